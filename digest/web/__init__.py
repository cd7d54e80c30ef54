"""Web faces: the public app (`digest serve`) and the local preview (`digest preview`)."""
