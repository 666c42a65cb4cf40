module luthien.dev/settings

go 1.26.7
