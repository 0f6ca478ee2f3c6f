CREATE TABLE words (w text, code varchar(10) COLLATE "POSIX");
