"""The shower generators: CaloClouds, CaloClouds II, its consistency model and the baseline, with
their pieces (ShowerFlow, PointWise Net, EDM, the calibration pipeline) and shower training."""
