"""The robot interface without rclpy: message <-> array conversion, observations, synchronisation, safety, targets,
trajectories and the node configuration. ROS nodes (``xwam_ros.ros``) and the offline evaluator both call these."""
