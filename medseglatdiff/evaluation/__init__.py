"""Metrics for single masks (Dice, IoU, HD95, ASSD) and for sample ensembles against several raters."""
