"""The book's machinery, apart from the teaching code (which never imports it): `contents` (the notebooks, their
sections and titles, the records index shipped in the wheel), `bands` (the one band checker), `execute` (one notebook
under papermill), `run` (the book, `make run`), `results` (records.json, report.html, `--resume` keys), `publish`
(committed outputs), `report` (the HTML results table), `ledger` (the overview's "When is RL worth it?"),
`website` and `browser_check` (`make book`), `setup_cell` (the notebooks' first cell), `cli` (`python -m rlgen_utils`)."""
