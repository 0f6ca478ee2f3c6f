CREATE TABLE tickets (id int, label text);
INSERT INTO tickets VALUES (1, 'a'), (2, 'b');
CREATE TABLE plain (id int GENERATED ALWAYS AS IDENTITY);
