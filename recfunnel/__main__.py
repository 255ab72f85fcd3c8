from recfunnel.cli import main

main()
