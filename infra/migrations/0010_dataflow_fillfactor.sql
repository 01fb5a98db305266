-- Dataflow: leave room in each page of the row tables so the sink's
-- repeated upserts of a row (it grows while its minute is open) are HOT
-- updates: the new version stays on the page and no index entry is added.
-- Only pages written from now on are affected; nothing is rewritten.
ALTER TABLE metrics_minute SET (fillfactor = 80);
ALTER TABLE service_minute SET (fillfactor = 80);
