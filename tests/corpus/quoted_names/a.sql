CREATE TABLE "Order Items" (id int);
