-- A record that could not be stored exactly as its data plane sent it is stored anyway, with
-- `flag` saying what was changed (fields cut or cleaned by the control plane's check, or what
-- PostgreSQL refused); a flagged record never holds back the records behind it.
ALTER TABLE audit_records ADD COLUMN flag text;
-- How many calls a record stands for: 1, or more for the aggregate a data plane writes for
-- refusals of calls without a valid vault key beyond its sampling budget.
ALTER TABLE audit_records ADD COLUMN call_count integer NOT NULL DEFAULT 1;

-- What a data plane sent that could not be stored as a record at all (a line that is not JSON,
-- or a record PostgreSQL refused even in its flagged, minimal form): kept as the bytes it came
-- as, for an operator to look at. Nothing should land here; each row is counted on /metrics.
CREATE TABLE audit_quarantine (
  id           bigserial   PRIMARY KEY,
  dataplane_id text        NOT NULL,
  incarnation  text,
  seq          bigint,
  error        text        NOT NULL,
  line         bytea       NOT NULL,
  -- A data plane sends what was not acknowledged again: the same line is kept once.
  line_sha256  bytea       NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (dataplane_id, line_sha256)
);
