CREATE SCHEMA audit;
COMMENT ON SCHEMA audit IS 'Audit trail';
CREATE SCHEMA billing;
CREATE TYPE audit.severity AS ENUM ('info', 'warning', 'critical');
CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL);
CREATE TABLE billing.accounts (region int, code text, owner_id uuid REFERENCES users(id) ON DELETE RESTRICT,
    PRIMARY KEY (region, code));
CREATE TABLE audit.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid REFERENCES users(id),
    account_region int, account_code text,
    severity audit.severity NOT NULL DEFAULT 'info',
    FOREIGN KEY (account_region, account_code) REFERENCES billing.accounts (region, code)
);
CREATE INDEX idx_events_user ON audit.events (user_id);
CREATE FUNCTION audit.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER trg_events_touch BEFORE UPDATE ON audit.events FOR EACH ROW EXECUTE FUNCTION audit.touch();
CREATE VIEW audit.recent AS SELECT id, severity FROM audit.events WHERE id > 100;
CREATE SEQUENCE billing.invoice_numbers;
CREATE TABLE billing.invoices (n bigint DEFAULT nextval('billing.invoice_numbers'), account_region int);
