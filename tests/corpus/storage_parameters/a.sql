CREATE TABLE hot (id int PRIMARY KEY, v text);
