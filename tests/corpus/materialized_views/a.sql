CREATE TABLE plays (track int, at timestamptz);
CREATE MATERIALIZED VIEW top AS SELECT track, count(*) AS n FROM plays GROUP BY track;
