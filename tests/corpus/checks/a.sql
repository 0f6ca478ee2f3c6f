CREATE TABLE items (status varchar(20), price numeric);
