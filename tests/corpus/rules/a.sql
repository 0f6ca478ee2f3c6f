CREATE TABLE accounts (id int PRIMARY KEY, closed boolean NOT NULL DEFAULT false);
