CREATE TABLE tracks (id int PRIMARY KEY, title text, plays int, artist text);
CREATE VIEW track_list AS SELECT id, title FROM tracks;
CREATE VIEW track_titles AS SELECT title FROM track_list;
CREATE VIEW unchanged AS SELECT id FROM tracks;
