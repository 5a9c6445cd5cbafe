from tfcxr.cli import main

main()
