from veza_schema.cli import main

main()
