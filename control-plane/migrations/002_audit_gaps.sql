-- Holes in a data plane's record sequence, noticed on ingest: records that were answered but
-- never arrived. Nothing should ever be written here; a row is something to investigate.
CREATE TABLE audit_gaps (
  dataplane_id text        NOT NULL,
  incarnation  text        NOT NULL,
  from_seq     bigint      NOT NULL,
  to_seq       bigint      NOT NULL,
  detected_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dataplane_id, incarnation, from_seq)
);
