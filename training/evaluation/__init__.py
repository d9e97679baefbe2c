"""Evaluation of trained models: automatic metrics (`metrics`) and the statistics of pairwise
judgments (`stats`).

Plain Python, no Django: a service turns the database rows into lists of texts and counts, and
stores or shows what comes back. The text metrics (BLEU, chrF, ROUGE-L) are local `evaluate`
modules under `modules/`, loaded by path, so nothing is fetched from the Hugging Face Hub.
"""
