CREATE TABLE boxes (w numeric, h numeric);
