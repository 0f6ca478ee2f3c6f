CREATE TABLE "Order Items" ("Item Id" int PRIMARY KEY, "user" text, "strange_name(((yo?)))" int);
CREATE TABLE nothing_here ();
CREATE TABLE "MixedCase" (id int CONSTRAINT "Weird Check" CHECK (id > 0));
CREATE INDEX "Idx Order" ON "Order Items" ("user");
CREATE TYPE "Status" AS ENUM ('A', 'B');
CREATE TABLE uses_status (s "Status");
