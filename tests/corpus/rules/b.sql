CREATE TABLE accounts (id int PRIMARY KEY, closed boolean NOT NULL DEFAULT false);
CREATE RULE r_soft_delete AS ON DELETE TO accounts DO INSTEAD UPDATE accounts SET closed = true WHERE id = OLD.id;
