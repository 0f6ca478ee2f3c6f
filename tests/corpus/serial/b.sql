CREATE TABLE counters (id serial PRIMARY KEY, big bigserial, small smallserial);
CREATE TABLE orders (number bigserial PRIMARY KEY, note text);
CREATE TABLE a_table_with_a_really_long_name_that_goes_on_and_on_and_on (a_column_with_a_long_name_too serial);
