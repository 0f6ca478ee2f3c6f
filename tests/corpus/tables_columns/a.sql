CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email varchar(100) NOT NULL);
CREATE TABLE legacy (id int);
