"""Private matching: two ecosync installs find their overlap by ECDH private set intersection
(DESIGN.md section 11, docs/private-matching.md).

`protocol` is the only module that knows the PSI library; `messages` the file format;
`requester` and `responder` the steps; `sets` which of our keys take part; `runs` the record
of every run in the warehouse.
"""
