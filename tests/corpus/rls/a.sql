CREATE TABLE documents (id int PRIMARY KEY, owner text NOT NULL, body text);
CREATE POLICY p_old ON documents USING (true);
