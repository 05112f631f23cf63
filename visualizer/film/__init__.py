"""`neuroweb film`: several runs of the model edited into one film, every cut caused by an event
in the runs (docs/film.md). One module per job: events.py (what the model did), grammar.py (the
edit: shots and, per video frame, what picture and sound do), cut.py (the director, playing the
plan through the App), cards.py (title, closing and notice cards, captions), soundtrack.py (the
sound and its loudness), timeline.py (the .otio edit list), assembly.py (all of it into the
mp4), command.py (the command's flags and runs)."""
