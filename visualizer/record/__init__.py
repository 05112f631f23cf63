"""Recording: read finished frames back from the GPU and encode them to video with ffmpeg."""
