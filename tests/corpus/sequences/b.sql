CREATE SEQUENCE invoice_numbers AS integer START 1000 INCREMENT 5 MINVALUE 10 MAXVALUE 999999 CACHE 10 CYCLE;
CREATE SEQUENCE countdown INCREMENT -1;
CREATE TABLE invoices (id int PRIMARY KEY DEFAULT nextval('invoice_numbers'), total numeric);
CREATE SEQUENCE invoice_line_seq;
CREATE TABLE invoice_lines (n bigint NOT NULL DEFAULT nextval('invoice_line_seq'));
ALTER SEQUENCE invoice_line_seq OWNED BY invoice_lines.n;
COMMENT ON SEQUENCE countdown IS 'Counts down';
