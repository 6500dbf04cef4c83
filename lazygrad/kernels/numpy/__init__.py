"""The numpy backend (the cpu device): render.py turns a Kernel into numpy source and a
NumpyProgram; lib.py holds the helpers that source calls (strided loads, contractions, ...)."""
