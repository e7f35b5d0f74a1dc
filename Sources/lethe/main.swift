print("lethe")
