CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email varchar(255) NOT NULL,
    display_name text,
    balance numeric(12,2) NOT NULL DEFAULT 0,
    tags text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamp(3) without time zone,
    code char(3),
    flags bit varying(8),
    payload jsonb
);
CREATE TABLE posts (id bigint PRIMARY KEY, user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE, body text);
