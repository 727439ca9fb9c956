module example.com/courier-handler

go 1.19
