CREATE TABLE words (w text COLLATE "C", code varchar(10), label text COLLATE "POSIX" NOT NULL DEFAULT '');
CREATE INDEX idx_words_w ON words (w);
