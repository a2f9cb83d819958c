"""Accuracy-and-speed benchmark of voice-skill against two naive PocketSphinx peers.

    python3 -m bench.run [--quick] [--seed N] [--out DIR]

corpus.py builds the synthetic corpus (flite and espeak-ng speech, conditions, near misses,
ordinary speech, a quiet night) with a manifest; run.py runs the real program and the peers
on it (measure.py); score.py turns events into accuracy figures; report.py prints the table.
"""
