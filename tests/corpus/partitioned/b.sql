-- Partitions as veza_ensure_partitions makes them: the current month (UTC) and 2 ahead, and a default.
CREATE TABLE events (id bigint NOT NULL, created_at timestamptz NOT NULL, kind text,
    CONSTRAINT pk_events PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE events_default PARTITION OF events DEFAULT;
DO $$
DECLARE s timestamptz;
BEGIN
    SET LOCAL timezone = 'UTC';
    s := date_trunc('month', now());
    FOR i IN 0..2 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                       'events_p' || to_char(s, 'YYYYMM'), s, s + interval '1 month');
        s := s + interval '1 month';
    END LOOP;
END $$;
CREATE INDEX idx_events_kind ON events (kind);
CREATE TABLE other (id int);
