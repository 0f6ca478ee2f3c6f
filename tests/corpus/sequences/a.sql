CREATE SEQUENCE old_numbers;
CREATE SEQUENCE invoice_numbers START 10;
