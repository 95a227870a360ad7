from commonweights.cli import main

# The guard matters: dist_checkpointing's writer spawns processes that re-import __main__.
if __name__ == "__main__":
    main()
