-- The audit trail: one row per call a data plane answered. Partitioned by day so that
-- retention drops whole partitions instead of deleting rows. (dataplane_id, incarnation,
-- seq) identifies a record as the data plane numbered it, so a re-sent record is ignored.
CREATE TABLE audit_records (
  ts                   timestamptz NOT NULL,
  dataplane_id         text        NOT NULL,
  incarnation          text        NOT NULL,
  seq                  bigint      NOT NULL,
  key_id               text,
  label                text,
  vendor               text        NOT NULL,
  method               text        NOT NULL,
  path                 text        NOT NULL,
  status               integer     NOT NULL,
  decision             text        NOT NULL CHECK (decision IN ('allowed', 'denied')),
  reason               text,
  amount               bigint,
  currency             text,
  estimated_usd_micros bigint      NOT NULL DEFAULT 0,
  usd_micros           bigint      NOT NULL DEFAULT 0,
  idempotency_key      text,
  vendor_request_id    text,
  vendor_object_id     text,
  stripe_charge_id     text,
  replayed             boolean     NOT NULL DEFAULT false,
  latency_ms           integer     NOT NULL DEFAULT 0,
  PRIMARY KEY (ts, dataplane_id, incarnation, seq)
) PARTITION BY RANGE (ts);

CREATE INDEX audit_records_label_ts ON audit_records (label, ts DESC);
CREATE INDEX audit_records_key_ts ON audit_records (key_id, ts DESC);
CREATE INDEX audit_records_idempotency_key ON audit_records (idempotency_key, ts DESC) WHERE idempotency_key IS NOT NULL;
CREATE INDEX audit_records_vendor_object ON audit_records (vendor_object_id) WHERE vendor_object_id IS NOT NULL;
CREATE INDEX audit_records_vendor_ts ON audit_records (vendor, ts DESC);

-- Rows whose day has no partition yet land here instead of failing the insert.
CREATE TABLE audit_records_default PARTITION OF audit_records DEFAULT;
