"""The `report` stage's library: run the report notebooks (``notebooks``) and check HTML pages in a real
headless browser (``browser``)."""
