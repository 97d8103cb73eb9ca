module hubsettings.local/pause

go 1.22
