CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'ecstatic');
CREATE TYPE pair AS (a int, b int);
CREATE TYPE money_amount AS (amount numeric(10,2), currency char(3));
COMMENT ON TYPE money_amount IS 'An amount';
CREATE TABLE people (m mood DEFAULT 'ok', moods mood[], price money_amount);
