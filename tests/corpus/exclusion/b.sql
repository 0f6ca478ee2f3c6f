CREATE EXTENSION btree_gist;
CREATE TABLE bookings (room int, during tstzrange, cancelled boolean NOT NULL DEFAULT false,
    CONSTRAINT ex_bookings_overlap EXCLUDE USING gist (room WITH =, during WITH &&) WHERE (NOT cancelled));
CREATE TABLE shifts (worker int, span tsrange,
    CONSTRAINT ex_shifts EXCLUDE USING gist (worker WITH =, span WITH &&) DEFERRABLE INITIALLY DEFERRED);
