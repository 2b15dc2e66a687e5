"""CamVid class ids used by the synthetic world, looked up by name so they cannot drift from
:data:`pipeline.labels.CAMVID`."""

from pipeline.labels import CAMVID

SKY = CAMVID.index("Sky")
BUILDING = CAMVID.index("Building")
POLE = CAMVID.index("Pole")
ROAD = CAMVID.index("Road")  # lane markings included, as CamVid labels them
PAVEMENT = CAMVID.index("Pavement")  # kerbs included
TREE = CAMVID.index("Tree")  # CamVid's 11-class Tree also covers other vegetation: verges, hedges
SIGN = CAMVID.index("SignSymbol")  # signs and traffic lights
FENCE = CAMVID.index("Fence")
CAR = CAMVID.index("Car")  # vans and buses too
PEDESTRIAN = CAMVID.index("Pedestrian")
BICYCLIST = CAMVID.index("Bicyclist")  # rider and bicycle together
