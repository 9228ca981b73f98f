"""One module per vendor, each with one adapter class. Loaded lazily by ``videojobs._registry``."""
