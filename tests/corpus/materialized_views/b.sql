CREATE TABLE plays (track int, at timestamptz);
CREATE MATERIALIZED VIEW top AS SELECT track, count(*) AS n FROM plays WHERE at > '2020-01-01' GROUP BY track;
CREATE UNIQUE INDEX idx_top_track ON top (track);
COMMENT ON MATERIALIZED VIEW top IS 'Top tracks';
CREATE MATERIALIZED VIEW empty_one AS SELECT 1 AS one WITH NO DATA;
