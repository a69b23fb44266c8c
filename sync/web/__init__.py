"""The read-only web view and JSON API over the warehouse (DESIGN.md section 9).

`queries/` holds the query functions (plain SQLAlchemy, no HTTP) that pages, API answers and
CSV downloads are rendered from; `app.py` is the thin FastAPI layer over them.
"""
