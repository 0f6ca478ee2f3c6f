CREATE TABLE nodes (id int, parent int, code text, slot int,
    CONSTRAINT nodes_pkey PRIMARY KEY (id),
    CONSTRAINT nodes_code_key UNIQUE (code) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT nodes_slot_key UNIQUE NULLS NOT DISTINCT (slot),
    CONSTRAINT nodes_parent_fkey FOREIGN KEY (parent) REFERENCES nodes(id) DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE positions (board int, square int, CONSTRAINT positions_pkey PRIMARY KEY (board, square) DEFERRABLE);
