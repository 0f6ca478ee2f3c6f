CREATE TABLE logs (id bigint NOT NULL, at timestamptz NOT NULL, line text) PARTITION BY RANGE (at);
CREATE TABLE logs_default PARTITION OF logs DEFAULT;
DO $$
DECLARE s timestamptz;
BEGIN
    SET LOCAL timezone = 'UTC';
    s := date_trunc('month', now());
    FOR i IN 0..3 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF logs FOR VALUES FROM (%L) TO (%L)',
                       'logs_p' || to_char(s, 'YYYYMM'), s, s + interval '1 month');
        s := s + interval '1 month';
    END LOOP;
END $$;
