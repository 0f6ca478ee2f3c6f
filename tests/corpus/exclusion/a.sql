CREATE EXTENSION btree_gist;
CREATE TABLE bookings (room int, during tstzrange, cancelled boolean NOT NULL DEFAULT false);
