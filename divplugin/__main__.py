from divplugin.cli import main

main()
