"""The allyship review (Table 2): the library's first user, built on the general stages."""
